pragma solidity ^0.7.0;

// Only the owner may sweep.
contract DonationBox {
    address payable public owner;

    modifier onlyOwner() {
        require(msg.sender == owner, "owner");
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    receive() external payable {}

    function sweep(address payable to, uint256 amount) external onlyOwner {
        to.transfer(amount);
    }
}
