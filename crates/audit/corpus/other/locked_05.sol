pragma solidity ^0.5.7;

contract Donations { // expect: other
    mapping(address => uint256) public donated;

    function donate() public payable {
        donated[msg.sender] += msg.value;
    }

    function total() public view returns (uint256) {
        return address(this).balance;
    }
}
