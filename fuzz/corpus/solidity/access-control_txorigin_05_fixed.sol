pragma solidity ^0.5.4;

// The direct caller must be the owner.
contract Treasury {
    address payable public owner;

    constructor() public {
        owner = msg.sender;
    }

    function() external payable {}

    function pay(address payable to, uint256 amount) public {
        require(msg.sender == owner);
        to.transfer(amount);
    }
}
