pragma solidity ^0.5.2;

// Shares are credited; each payee withdraws on their own.
contract Splitter {
    address payable[] public payees;
    mapping(address => uint256) public credit;
    address public owner;

    constructor(address payable[] memory initial) public {
        owner = msg.sender;
        payees = initial;
    }

    function() external payable {}

    function distribute() public {
        require(msg.sender == owner);
        uint256 share = address(this).balance / payees.length;
        for (uint256 i = 0; i < payees.length; i++) {
            credit[payees[i]] += share;
        }
    }

    function withdraw() public {
        uint256 amount = credit[msg.sender];
        credit[msg.sender] = 0;
        msg.sender.transfer(amount);
    }
}
