pragma solidity ^0.5.0;

contract Dividends {
    address payable[] public shareholders;
    mapping(address => uint256) public shares;
    uint256 public totalShares;

    function buyShare() public payable {
        require(msg.value == 1 ether);
        if (shares[msg.sender] == 0) {
            shareholders.push(msg.sender);
        }
        shares[msg.sender] += 1;
        totalShares += 1;
    }

    function payDividends() public {
        uint256 pot = address(this).balance;
        for (uint256 i = 0; i < shareholders.length; i++) {
            address payable holder = shareholders[i];
            holder.transfer(pot * shares[holder] / totalShares); // expect: denial-of-service
        }
    }
}
